build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_soft_s3.qf --json /tmp/qat_runs/rec_cnn_w8_soft_s3.json --distill --seed 3
# source tree ebb123e, 2026-11-26T14:48:10Z, load 7.88 7.79 7.97
# finished 2026-11-26T14:49:05Z, load 7.52 7.69 7.92
