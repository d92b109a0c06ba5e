from services.orchestrator.cli import orchestrator

if __name__ == "__main__":
    orchestrator(prog_name="python -m services.orchestrator")
