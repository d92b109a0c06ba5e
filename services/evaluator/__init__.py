"""The evaluator gRPC service (`pbt.v1.EvaluatorService`): a thin adapter over `pbt.evaluate`."""
