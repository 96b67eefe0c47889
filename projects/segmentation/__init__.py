"""3D segmentation of synthetic MONAI volumes with a small UNet, Dice loss and a sliding-window inferer."""
