build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 60000 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_ste_full.qf --json /tmp/qat_runs/rec_cnn_w8_ste_full.json --distill --seed 1
# source tree ebb123e, 2026-11-26T14:49:40Z, load 7.69 7.71 7.92
# finished 2026-11-26T14:51:26Z, load 7.41 7.59 7.85
