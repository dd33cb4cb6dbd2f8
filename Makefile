# siyu — `make demo` to try it, `make test` to check it.
PY ?= python3
UV := $(PY) -m uv
export SIYU_DATA_DIR ?= $(CURDIR)/var

.PHONY: install demo serve test test-spark test-all bench lint format clean

install:
	@$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	@$(UV) sync --frozen -q

demo: install
	@$(UV) run siyu demo up

serve: install
	@$(UV) run siyu serve

test: install
	@$(UV) run pytest -m "not slow and not spark" -q

# analytics on PySpark local mode vs DuckDB (needs Java; about 10 minutes on 2 cores)
test-spark: install
	@$(UV) run pytest -m "spark and not slow" -q

test-all: install
	@$(UV) run pytest -q

bench: install
	@$(UV) run python -m bench.run

lint: install
	@$(UV) run ruff check src tests bench
	@$(UV) run ruff format --check src tests bench
	@$(UV) run mypy

format: install
	@$(UV) run ruff format src tests bench
	@$(UV) run ruff check --fix src tests bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
