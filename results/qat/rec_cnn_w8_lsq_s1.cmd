build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator lsq --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_cnn_w8_lsq_s1.qf --json /tmp/qat_runs/rec_cnn_w8_lsq_s1.json --distill --seed 1
# source tree bf63c69, 2026-11-26T14:39:02Z, load 7.09 7.65 8.34
# finished 2026-11-26T14:39:45Z, load 6.81 7.52 8.26
