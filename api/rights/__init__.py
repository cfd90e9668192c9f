"""Data-subject rights (Art. 7, 8): requests, correction, export, erasure and retention."""
