build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_ste_s3.qf --json /tmp/qat_runs/rec_cnn_w8_ste_s3.json --distill --seed 3
# source tree d4aff44, 2026-11-26T14:47:04Z, load 9.18 7.88 8.01
# finished 2026-11-26T14:47:36Z, load 8.88 7.94 8.02
