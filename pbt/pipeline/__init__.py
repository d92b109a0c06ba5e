"""The closed retraining loop: trees -> pairs -> DPO -> candidate served -> evaluated -> gated promotion.

`spec` (the versioned pipeline definition), `steps` (the one step list), `workflow` (the Argo
WorkflowTemplate renderer), `gate` (the verdict), `promote` (the GitOps values change),
`run` (the step implementations and the local runner), `serving` (the serving agent's LoRA
routes and the adapter volume). Details: docs/pipeline.md.
"""
