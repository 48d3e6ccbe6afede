# Targets named in the README. Variables: MODEL, DATA (default: the shared portraits).
PY ?= python
DATA ?= ../shared/data/portraits
MODEL ?= sinet

.PHONY: install demo train-demo test lint bench train-portraits web serve

install:
	pip install -e ".[dev]"

# the README's first command: the built-in model on scikit-image's astronaut photo
demo:
	segme demo --out out/

# a short train + eval on synthetic data (no download)
train-demo:
	segme synth demo-data --train 64 --val 16
	segme train --model sinet --data demo-data/train --val demo-data/val --size 64 --epochs 2 --batch 8 --out runs/demo
	segme eval --model runs/demo/best.pt --data demo-data/val

test:
	$(PY) -m pytest -q

lint:
	ruff check src tests benchmarks

# latency of the built-in model and of every exported model in runs/ (1 and 2 threads)
bench:
	$(PY) benchmarks/latency.py src/segme/weights/*.onnx $(wildcard runs/*/best.onnx)

# the recipe behind docs/models.md for one model
train-portraits:
	segme train --model $(MODEL) --data $(DATA)/train --val $(DATA)/val \
		--backgrounds ../shared/data/backgrounds --out runs/$(MODEL)

# the web page of `segme serve` (onnxruntime-web): build web/ into src/segme/serve/static/
web:
	cd web && npm ci && npm run build

serve: web
	segme serve
