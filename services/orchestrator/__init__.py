"""The gRPC debate orchestrator service (`pbt serve orchestrator`); the logic lives in `pbt.orchestrate`."""
