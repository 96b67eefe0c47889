"""Handwritten digits: scikit-learn's 1,797 bundled 8x8 scans and a small CNN."""
