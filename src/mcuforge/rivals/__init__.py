"""Rival systems measured on the same model files, to compare our figures against: TFLite Micro's
arena, taken with the `tflite-micro` pip interpreter in a child process (`tflm`); its keyword spotting
(preprocessor per hop + classifier, `tflm_audio`); TFLite Micro + CMSIS-NN built and counted on
Cortex-M with the shared measuring kit (`tflm_kit`). A measurement of
another runtime, not analysis of the IR, so it sits above the file formats it reads.
May import: frontends and every layer below it (`mcuforge.layers`)."""
