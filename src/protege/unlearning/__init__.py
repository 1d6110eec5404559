"""Machine unlearning on the engine: which examples to forget, exact unlearning by SISA, approximate
methods (fine-tuning, NegGrad+, random labels, SCRUB, bad-teacher distillation) as steps, and their
evaluation against the model retrained without the forgotten data (docs/unlearning.md).

Import the parts from their modules: this package's own import stays light, as the recipe schema
(protege.config) reads ``protege.unlearning.config``.
"""
