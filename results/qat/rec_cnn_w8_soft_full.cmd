build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 60000 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_soft_full.qf --json /tmp/qat_runs/rec_cnn_w8_soft_full.json --distill --seed 1
# source tree 6cd5ce2, 2026-11-26T14:54:26Z, load 7.91 7.82 7.90
# finished 2026-11-26T14:58:55Z, load 8.86 7.96 7.91
