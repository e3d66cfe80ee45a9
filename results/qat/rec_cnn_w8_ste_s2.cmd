build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_ste_s2.qf --json /tmp/qat_runs/rec_cnn_w8_ste_s2.json --distill --seed 2
# source tree d80ebd9, 2026-11-26T14:40:35Z, load 6.51 7.32 8.15
# finished 2026-11-26T14:40:58Z, load 5.91 7.11 8.06
