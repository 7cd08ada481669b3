"""Rival systems measured on the same model files, to compare our figures against: TFLite Micro's
arena, taken with the `tflite-micro` pip interpreter in a child process (`tflm`). A measurement of
another runtime, not analysis of the IR, so it sits above the file formats it reads.
May import: frontends and every layer below it (`mcuforge.layers`)."""
