"""Studies, one question each: the distill ablation, the selection protocol and paired bootstraps, k-means seed
noise, token lengths, refinement variants and gap, the classification fine-tune table, and model size against
quality (``size``)."""
