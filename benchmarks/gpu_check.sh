#!/usr/bin/env bash
# The GPU checks, on one CUDA machine: the CUDA tests, then the RLRT/GRPO step-time ratio on a random-weight model
# of Qwen2.5-0.5B's shape (HF generate rollouts, bf16).
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]      (default: gpu_check/)
#
# Needs the project installed (`pip install -e .[test]`, deepspeed for the ZeRO cases) and the embedded
# tokenizer: the embedded model package, or RLRT_TEST_TOKENIZER=<folder with its tokenizer files>.
# PYTEST_ADDOPTS (e.g. -k fsdp) selects tests; STEP_TIME_STEPS sets the benchmark length (first step excluded).
set -uo pipefail
out="${1:-gpu_check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
python -c "import torch, transformers, trl, accelerate; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'trl', trl.__version__, 'accelerate', accelerate.__version__)" | tee -a "$out/device.txt"

python -m pytest tests/test_gpu.py -v -p no:cacheprovider --timeout 240 --junitxml="$out/gpu_tests.xml" 2>&1 | tee "$out/gpu_tests.log"
tests_status=${PIPESTATUS[0]}

model="$(mktemp -d)/random-qwen2.5-0.5b-shape"
python - "$model" <<'EOF'
import os, sys
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from rlrt.models import embedded_model_dir, load_tokenizer

tokenizer = load_tokenizer(os.environ.get("RLRT_TEST_TOKENIZER") or str(embedded_model_dir()))
torch.manual_seed(0)
config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                     num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                     tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
EOF
python benchmarks/step_time.py --model "$model" --reward parity --bf16 on --steps "${STEP_TIME_STEPS:-4}" --batch 64 --generations 8 \
  --completion 256 --out "$out/step_time_gpu.json" 2>&1 | tail -n 30 | tee "$out/step_time.log"
bench_status=${PIPESTATUS[0]}
rm -rf "$model"
echo "tests exit $tests_status, benchmark exit $bench_status"
exit $(( tests_status || bench_status ))
