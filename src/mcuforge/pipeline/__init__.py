"""End-to-end jobs that chain the pipeline's stages (the demo)."""
