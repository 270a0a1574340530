# Conveniences for developers; scripts/setup.sh does the real work (and works on a fresh
# machine without make).
.PHONY: build run test format
build:
	scripts/setup.sh build
run:
	scripts/setup.sh run
test:
	scripts/setup.sh test
format:
	clang-format-14 -i $$(git ls-files '*.cc' '*.h')
