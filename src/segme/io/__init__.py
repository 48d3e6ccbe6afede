"""File input/output shared by every entry point (torch-free)."""
