"""genkit.distill: one-step distillation (DMD2, VSD). Not built yet: see the open distillation issue."""
