# realtime-avatar: every target sets itself up first (scripts/setup.sh is a no-op when nothing changed).
PY := .venv/bin/python
export BENTOML_DO_NOT_TRACK := true

.PHONY: setup test test-fast lint format docs docs-serve serve serve-triton bench-triton bench bench-audio-in bench-stream bench-serving bench-engines bench-conversation bench-speech bench-lipsync bench-live bench-images bench-memory bento image images demo clean
PORT ?= 3000

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir $$(mktemp -d)
	$(PY) -m pytest -q
	cd integrations/pipecat && .venv/bin/python -m pytest -q -p no:logging

test-fast: setup
	$(PY) -m pytest -q -m "unit"

docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve --dev-addr 127.0.0.1:$(or $(DOCS_PORT),8000)

lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

serve: setup
	.venv/bin/bentoml serve . --port $(PORT)

# The same API over Triton: the runners as Triton models (services_triton, from .venv-triton), the API calling them
# over KServe v2 (TRITON_PORT, +1 gRPC, +2 metrics)
serve-triton: setup
	@bash scripts/serve_triton.sh $(PORT) $(or $(TRITON_PORT),8000)

bento: setup
	$(PY) scripts/build_bentos.py --flavor $(or $(FLAVOR),cpu)

# OCI images with podman (no Docker needed): localhost/realtime-avatar:cpu, and the split units' images.
# BASE_IMAGE=python:3.11-slim (or any base with Python 3.11) instead of the Debian base made with debootstrap.
image: setup
	$(PY) scripts/build_images.py --units $(or $(UNIT),all) --flavor $(or $(FLAVOR),cpu)

images: setup
	$(PY) scripts/build_images.py --units all api tts avatar --flavor $(or $(FLAVOR),cpu)

bench-images: images
	$(PY) scripts/bench_images.py --readme docs

demo: setup
	.venv/bin/avatar generate "Hello! I am a talking portrait, rendered on your CPU in real time." -o demo.mp4

bench: setup
	$(PY) scripts/benchmark.py --serving --streaming --readme docs
	$(PY) scripts/bench_conversation.py --readme docs
	$(PY) scripts/bench_speech.py --readme docs
	$(PY) scripts/bench_lipsync.py --readme docs
	$(PY) scripts/bench_live.py --readme docs
	$(PY) scripts/bench_audio_in.py --readme docs

bench-memory: setup
	$(PY) scripts/bench_memory.py --readme docs

bench-audio-in: setup
	$(PY) scripts/bench_audio_in.py --readme docs

bench-live: setup
	$(PY) scripts/bench_live.py --readme docs

bench-lipsync: setup
	$(PY) scripts/bench_lipsync.py --readme docs

bench-speech: setup
	$(PY) scripts/bench_speech.py --readme docs

bench-engines: setup
	$(PY) scripts/bench_engines.py --readme docs

bench-triton: setup
	$(PY) scripts/bench_triton.py --readme docs

bench-stream: setup
	$(PY) scripts/bench_stream.py --readme docs

bench-conversation: setup
	$(PY) scripts/bench_conversation.py --readme docs

bench-serving: setup
	$(PY) scripts/bench_serving.py --readme docs

clean:
	rm -rf .venv .pytest_cache .ruff_cache
