"""Unsupervised domain adaptation on the engine: a labelled source and an unlabelled target (another data
source, or a fixed shift of the recipe's own data: target.py), each method a stage trained from the same
initial weights (plan.py): source-only training (ERM), AdaBN (BatchNorm statistics re-estimated on the
target: adabn.py), DANN, CDAN+E and MDD as two-stream steps (steps.py, with the gradient reversal layer in
grl.py and the domain heads in heads.py), every model scored on the target's and the source's test split
(evaluate.py). docs/adaptation.md explains the methods and how a model is selected.

Import the parts from their modules: this package's own import stays light, as the recipe schema
(protege.config) reads ``protege.adaptation.config``.
"""
