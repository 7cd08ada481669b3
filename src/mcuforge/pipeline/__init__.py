"""End-to-end jobs that chain the stages of the whole tool: the demo (`demo`: search, compile, run
under QEMU, TFLite Micro's arena, report), resumable stage by stage.

May import: every layer below it in `mcuforge.layers` (up to nas); not commands or cli."""
