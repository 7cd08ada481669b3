"""Reports drawn from plain results: matplotlib figures written atomically (`plots`), the saved
stage results of a demo run folder (`results`) and its HTML report (`html`, templates in
`templates/`).

May import: every layer below it in `mcuforge.layers` (up to quant and train); not nas, pipeline,
commands or cli."""
