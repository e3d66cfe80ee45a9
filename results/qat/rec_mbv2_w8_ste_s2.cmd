build-qat/src/cli/qforge qat models/fmnist_mobilenetv2.onnx --data fashion-mnist --epochs 1 --limit 3200 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_mbv2_w8_ste_s2.qf --json /tmp/qat_runs/rec_mbv2_w8_ste_s2.json --distill --seed 2
# source tree 609e90b, 2026-11-26T14:58:58Z, load 8.86 7.96 7.91
# finished 2026-11-26T15:00:22Z, load 11.05 8.88 8.24
