from services.evaluator.cli import evaluator

if __name__ == "__main__":
    evaluator(prog_name="python -m services.evaluator")
