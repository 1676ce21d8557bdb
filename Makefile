# genkit: two commands for a fresh machine.
#   make demo   set up .venv and generate a grid of images with the bundled model
#   make test   set up .venv and run the test suite
#   make weights  retrain every shipped model; make bench  run the benchmarks
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= outputs/demo

.PHONY: demo test test-all setup weights weights-fpdm weights-student weights-avatar weights-video weights-3d weights-sign bench lint clean

setup: $(STAMP)

# torch==2.13.0 first (the CPU build on these machines; CUDA where pip finds it), so that resolving
# genkit's own dependencies never pulls a newer torch. Nothing pulls torchvision.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/genkit generate "a small red circle at the top left" "a large blue square in the center" \
		"a small yellow triangle at the bottom right" "a large purple cross at the top right" \
		--num-images 6 --steps 25 --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not gpu"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

# Reproduce the shipped weights in genkit/assets (about 3.5 hours on 2 CPU cores; BENCHMARKS.md has each run).
weights: $(STAMP)
	$(BIN)/genkit train tokenizer --out runs/tokenizer
	$(BIN)/genkit train vae --out runs/vae
	$(BIN)/genkit train classifier --out runs/classifier --save-dtype fp16
	$(BIN)/genkit train text2img --vae runs/vae/model --tokenizer runs/tokenizer --out runs/text2img --save-dtype fp16
	rm -rf genkit/assets/text2img-shapes genkit/assets/shapes-oracle
	cp -r runs/text2img/model genkit/assets/text2img-shapes
	cp -r runs/classifier/model genkit/assets/shapes-oracle
	$(MAKE) weights-fpdm
	$(MAKE) weights-student
	$(MAKE) weights-avatar
	$(MAKE) weights-video
	$(MAKE) weights-3d
	$(MAKE) weights-sign

# FPDM and its DiT baseline on the bundled text2img-shapes VAE and text encoder at equal training FLOPs
# (an S-JFB step costs 0.455 of a DiT-14 step in FLOPs, batch 64: 5500 x 36.6 = 2500 x 80.5 GFLOP;
# bench/fpdm_vs_dit.py measures it).
weights-fpdm: $(STAMP)
	$(BIN)/genkit train fpdm --arch fpdm --max-train-steps 5500 --out runs/fpdm --save-dtype fp16
	$(BIN)/genkit train fpdm --arch dit --max-train-steps 2500 --out runs/dit --save-dtype fp16
	rm -rf genkit/assets/fpdm-shapes genkit/assets/dit-shapes
	cp -r runs/fpdm/model genkit/assets/fpdm-shapes
	cp -r runs/dit/model genkit/assets/dit-shapes

# One-step students of the bundled text2img-shapes teacher, from prompts only (genkit distill). The DMD
# student ships with a small AutoencoderKL decoder of the teacher's latents (genkit train tiny-decoder,
# about 20 minutes); its training does not use the decoder, which only replaces the KL VAE in the export.
weights-student: $(STAMP)
	$(BIN)/genkit train tiny-decoder --out runs/tiny-decoder --save-dtype fp16
	$(BIN)/genkit distill --method dmd --out runs/student --max-train-steps 400 --gan-weight 1e-3 --save-dtype fp16 \
		--decoder runs/tiny-decoder/model
	$(BIN)/genkit distill --method vsd --out runs/student-vsd --max-train-steps 400 --save-dtype fp16
	rm -rf genkit/assets/student-shapes genkit/assets/student-vsd-shapes
	cp -r runs/student/model genkit/assets/student-shapes
	cp -r runs/student-vsd/model genkit/assets/student-vsd-shapes

# The head avatar of genkit's procedural head (bench/avatar.py trains it the same way, with its baselines).
weights-avatar: $(STAMP)
	$(BIN)/genkit avatar data --out runs/head
	$(BIN)/genkit avatar train --data runs/head --out runs/avatar --max-train-steps 1000 --save-dtype fp16
	rm -rf genkit/assets/avatar-head
	cp -r runs/avatar/model genkit/assets/avatar-head

# Motion modules on the bundled text2img-shapes (frozen) and the video metrics' classifier (about 35 minutes).
weights-video: $(STAMP)
	$(BIN)/genkit train video --out runs/video --max-train-steps 2500 --noise-warp --save-dtype fp16
	$(BIN)/genkit train video-classifier --out runs/video-classifier --save-dtype fp16
	rm -rf genkit/assets/video-shapes genkit/assets/video-classifier
	cp -r runs/video/model genkit/assets/video-shapes
	cp -r runs/video-classifier/model genkit/assets/video-classifier

# Text-to-3D: a VAE of 3-D renders, the camera-conditioned prior on it, and the classifier of the 3-D
# metrics (about 25 minutes).
weights-3d: $(STAMP)
	$(BIN)/genkit train vae --data objects3d --out runs/vae3d --max-train-steps 1500
	$(BIN)/genkit train view-prior --vae runs/vae3d/model --out runs/view-prior --max-train-steps 2500 --save-dtype fp16
	$(BIN)/genkit train objects3d-classifier --out runs/objects3d-classifier --save-dtype fp16
	rm -rf genkit/assets/view-prior-objects genkit/assets/objects3d-classifier
	cp -r runs/view-prior/model genkit/assets/view-prior-objects
	cp -r runs/objects3d-classifier/model genkit/assets/objects3d-classifier

# Sign-avatar motion: the text-to-motion model and the evaluator of the sign metrics.
weights-sign: $(STAMP)
	$(BIN)/genkit train sign --out runs/sign --save-dtype fp16
	$(BIN)/genkit train sign-evaluator --out runs/sign-evaluator --save-dtype fp16
	rm -rf genkit/assets/sign-motion genkit/assets/sign-evaluator
	cp -r runs/sign/model genkit/assets/sign-motion
	cp -r runs/sign-evaluator/model genkit/assets/sign-evaluator

bench: $(STAMP)
	$(BIN)/python bench/vae.py
	$(BIN)/python bench/text2img.py
	$(BIN)/python bench/fpdm_vs_dit.py
	$(BIN)/python bench/distill.py
	$(BIN)/python bench/nerf.py
	$(BIN)/python bench/avatar.py
	$(BIN)/python bench/avatar_inputs.py
	$(BIN)/python bench/video.py
	$(BIN)/python bench/text_to_3d.py
	$(BIN)/python bench/sign.py

lint: $(STAMP)
	$(BIN)/python -m ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache
