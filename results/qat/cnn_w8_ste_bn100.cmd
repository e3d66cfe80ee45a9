build-qat/src/cli/qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --limit 12800 --estimator ste --bits-w 8 --bits-a 8 --optimizer adamw --lr 3e-5 --threads 1 -o /tmp/qat_runs/cnn_w8_ste_bn100.qf --json /tmp/qat_runs/cnn_w8_ste_bn100.json --freeze-bn-step 100
# source tree ebb123e, 2026-11-26T14:49:05Z, load 7.52 7.69 7.92
# finished 2026-11-26T14:49:39Z, load 7.69 7.71 7.92
