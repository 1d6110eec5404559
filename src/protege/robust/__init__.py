"""Adversarial training and robust distillation: attacks in the model's input space (attacks.py, with the
data's range and standardisation in space.py), training steps for PGD training, TRADES, ARD and RSLAD
(steps.py, registered by name in methods.py), the plan that gives each stage of a recipe its method
(plan.py) and robust accuracy for the report (evaluate.py). docs/robust.md explains the units.

The package imports nothing heavy here: the recipe schema (config.py) is read before torch is needed."""
