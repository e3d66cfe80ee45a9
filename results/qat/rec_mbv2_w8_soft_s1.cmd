build-qat/src/cli/qforge qat models/fmnist_mobilenetv2.onnx --data fashion-mnist --epochs 1 --limit 3200 --estimator soft --bits-w 8 --bits-a 8 --optimizer adamw --lr 1e-5 --threads 1 -o /tmp/qat_runs/rec_mbv2_w8_soft_s1.qf --json /tmp/qat_runs/rec_mbv2_w8_soft_s1.json --distill --seed 1
# source tree d80ebd9, 2026-11-26T14:44:49Z, load 8.48 7.26 7.86
# finished 2026-11-26T14:47:02Z, load 9.37 7.90 8.01
