build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 60000 --estimator lsq --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_lsq_full.qf --json /tmp/qat_runs/rec_cnn_w8_lsq_full.json --distill --seed 1
# source tree ebb123e, 2026-11-26T14:51:26Z, load 7.41 7.59 7.85
# finished 2026-11-26T14:54:26Z, load 7.91 7.82 7.90
