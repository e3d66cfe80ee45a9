build-qat/src/cli/qforge qat models/fmnist_mobilenetv2.onnx --data fashion-mnist --epochs 1 --limit 3200 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_mbv2_w8_ste_s1.qf --json /tmp/qat_runs/rec_mbv2_w8_ste_s1.json --distill --seed 1
# source tree d80ebd9, 2026-11-26T14:42:09Z, load 5.00 6.51 7.78
# finished 2026-11-26T14:43:19Z, load 7.03 6.82 7.80
