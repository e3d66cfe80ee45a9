build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_soft_s2.qf --json /tmp/qat_runs/rec_cnn_w8_soft_s2.json --distill --seed 2
# source tree d80ebd9, 2026-11-26T14:41:23Z, load 4.80 6.75 7.92
# finished 2026-11-26T14:42:09Z, load 5.00 6.51 7.78
