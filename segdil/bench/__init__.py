"""``segdil bench``: training and inference speed, memory and the conv ceiling."""
