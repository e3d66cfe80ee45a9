build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_soft_s4.qf --json /tmp/qat_runs/rec_cnn_w8_soft_s4.json --distill --seed 4
# source tree c315498, 2026-11-26T15:06:40Z, load 10.52 10.15 9.09
# finished 2026-11-26T15:07:51Z, load 10.22 10.12 9.16
