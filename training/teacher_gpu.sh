#!/usr/bin/env bash
# One run on a lent GPU machine: the teacher ensemble, its outputs kept as training data, and three students distilled
# from them (teacher weight 0, the control, 0.5 and 1). Where a GPU is lent (training/README.md, step 7):
#   bash training/teacher_gpu.sh PACKED OUT      # PACKED from `python training/device_data.py pack PACKED`
# OUT gets teacher_views.npz, teacher_eval.npz, student-<weight>.onnx (plain exports) and logs.tgz.
set -uo pipefail
packed=$1 out=$2 work=${WORK:-/tmp/teacher-run}
export PYTHONUNBUFFERED=1
mkdir -p "$work" "$out"
trap 'tar czf "$out/logs.tgz" -C "$work" --exclude "*.pt" --exclude "*.npz" --exclude "*.onnx" .' EXIT
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 training/device_data.py unpack "$packed" || exit 1
python3 training/teacher.py --out "$work/teacher" --device cuda --crossval-crops "$packed" \
    --budget-s "${BUDGET_S:-200}" || exit 1
cp "$work/teacher/teacher_views.npz" "$work/teacher/teacher_eval.npz" "$out/"
for w in 0 0.5 1; do
    python3 training/train_perceived.py --device cuda --teacher "$work/teacher/teacher_views.npz" --teacher-weight $w \
        --epochs 42 --out "$work/student-$w" >"$work/student-$w.out" 2>&1 &
done
wait
for w in 0 0.5 1; do
    cp "$work/student-$w/plain.onnx" "$out/student-$w.onnx" || tail -5 "$work/student-$w.out"
    grep "epoch 42/42" "$work/student-$w.out"
done
