build-qat/src/cli/qforge qat models/fmnist_mobilenetv2.onnx --data fashion-mnist --epochs 1 --limit 3200 --estimator lsq --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_mbv2_w8_lsq_s2.qf --json /tmp/qat_runs/rec_mbv2_w8_lsq_s2.json --distill --seed 2
# source tree 9a2d611, 2026-11-26T15:00:22Z, load 11.05 8.88 8.24
# finished 2026-11-26T15:01:52Z, load 11.80 9.66 8.58
