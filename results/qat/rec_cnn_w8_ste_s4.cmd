build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_ste_s4.qf --json /tmp/qat_runs/rec_cnn_w8_ste_s4.json --distill --seed 4
# source tree c315498, 2026-11-26T15:05:05Z, load 9.72 9.91 8.91
# finished 2026-11-26T15:05:48Z, load 10.35 10.05 9.00
