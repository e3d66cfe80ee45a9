build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_soft_s1.qf --json /tmp/qat_runs/rec_cnn_w8_soft_s1.json --distill --seed 1
# source tree 1e1e45e, 2026-11-26T14:39:45Z, load 6.81 7.52 8.26
# finished 2026-11-26T14:40:35Z, load 6.51 7.32 8.15
