"""Multi-class 3D U-Net: training on sparse labels, sliding-window prediction, checkpoints."""
