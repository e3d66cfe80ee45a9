build-qat/src/cli/qforge qat models/fmnist_mobilenetv2.onnx --data fashion-mnist --epochs 1 --limit 3200 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_mbv2_w8_soft_s2.qf --json /tmp/qat_runs/rec_mbv2_w8_soft_s2.json --distill --seed 2
# source tree 9a2d611, 2026-11-26T15:01:52Z, load 11.80 9.66 8.58
# finished 2026-11-26T15:04:04Z, load 10.97 10.13 8.90
