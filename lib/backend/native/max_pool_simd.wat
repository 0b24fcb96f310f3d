;; Max pooling (NHWC) in WebAssembly SIMD (f32x4 over channels), over the tfjs
;; wasm backend's own linear memory (imported as env.memory). Source of the bytes
;; in max_pool_simd_wasm.ts; rebuild with `deno run -A lib/backend/native/build_wasm_simd.ts`.
;; Same results as max_pool_heap.ts's loops: ties go to a window's first maximum
;; (row by row), padding cells are never a maximum, and each output keeps the
;; element index (into the input) of its maximum for the backward pass.
(module
  (import "env" "memory" (memory 0))

  ;; dst = maxpool(src), idx = the maxima's element indices; src, dst, idx are
  ;; byte addresses; c >= 4 (the last group of four channels is shifted back to
  ;; end at channel c, recomputing a few lanes instead of a scalar tail).
  (func (export "maxpool")
    (param $src i32) (param $dst i32) (param $idx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (param $oh i32) (param $ow i32) (param $fh i32) (param $fw i32)
    (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $i i32) (local $j i32) (local $k i32) (local $kk i32)
    (local $r i32) (local $s i32) (local $r0 i32) (local $r1 i32) (local $s0 i32) (local $s1 i32)
    (local $o i32) (local $p i32) (local $at i32)
    (local $best v128) (local $arg v128) (local $v v128) (local $gt v128) (local $lanes v128)
    (local.set $lanes (v128.const i32x4 0 1 2 3))
    (loop $lb
      (local.set $i (i32.const 0))
      (loop $li
        ;; window rows [r0, r1) inside the input
        (local.set $r0 (i32.sub (i32.mul (local.get $i) (local.get $sh)) (local.get $pt)))
        (local.set $r1 (i32.add (local.get $r0) (local.get $fh)))
        (local.set $r0 (select (local.get $r0) (i32.const 0) (i32.gt_s (local.get $r0) (i32.const 0))))
        (local.set $r1 (select (local.get $r1) (local.get $h) (i32.lt_s (local.get $r1) (local.get $h))))
        (local.set $j (i32.const 0))
        (loop $lj
          (local.set $s0 (i32.sub (i32.mul (local.get $j) (local.get $sw)) (local.get $pl)))
          (local.set $s1 (i32.add (local.get $s0) (local.get $fw)))
          (local.set $s0 (select (local.get $s0) (i32.const 0) (i32.gt_s (local.get $s0) (i32.const 0))))
          (local.set $s1 (select (local.get $s1) (local.get $w) (i32.lt_s (local.get $s1) (local.get $w))))
          (local.set $k (i32.const 0))
          (loop $lk
            (local.set $kk (select (local.get $k) (i32.sub (local.get $c) (i32.const 4))
              (i32.le_u (i32.add (local.get $k) (i32.const 4)) (local.get $c))))
            ;; the window's first pixel
            (local.set $p (i32.add
              (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r0))
                (local.get $w)) (local.get $s0)) (local.get $c))
              (local.get $kk)))
            (local.set $best (v128.load (i32.add (local.get $src) (i32.shl (local.get $p) (i32.const 2)))))
            (local.set $arg (i32x4.add (i32x4.splat (local.get $p)) (local.get $lanes)))
            (local.set $r (local.get $r0))
            (loop $lr
              (local.set $s (local.get $s0))
              (loop $ls
                (local.set $p (i32.add
                  (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r))
                    (local.get $w)) (local.get $s)) (local.get $c))
                  (local.get $kk)))
                (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $p) (i32.const 2)))))
                (local.set $gt (f32x4.gt (local.get $v) (local.get $best)))
                (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $gt)))
                (local.set $arg (v128.bitselect
                  (i32x4.add (i32x4.splat (local.get $p)) (local.get $lanes)) (local.get $arg) (local.get $gt)))
                (br_if $ls (i32.lt_s (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $s1))))
              (br_if $lr (i32.lt_s (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $r1))))
            (local.set $at (i32.shl (i32.add (local.get $o) (local.get $kk)) (i32.const 2)))
            (v128.store (i32.add (local.get $dst) (local.get $at)) (local.get $best))
            (v128.store (i32.add (local.get $idx) (local.get $at)) (local.get $arg))
            (br_if $lk (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 4))) (local.get $c))))
          (local.set $o (i32.add (local.get $o) (local.get $c)))
          (br_if $lj (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $ow))))
        (br_if $li (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $oh))))
      (br_if $lb (i32.lt_u (local.tee $b (i32.add (local.get $b) (i32.const 1))) (local.get $n)))))

  ;; dx = the input's gradient over nin elements: 0, then dy[o] added at idx[o]
  ;; for each of the nout outputs (windows may overlap); dy, dx, idx are byte addresses.
  (func (export "maxpool_grad")
    (param $dy i32) (param $dx i32) (param $idx i32) (param $nin i32) (param $nout i32)
    (local $i i32) (local $end i32) (local $a i32)
    (local.set $end (i32.and (local.get $nin) (i32.const -4)))
    (block $zdone
      (loop $zloop
        (br_if $zdone (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $dx) (i32.shl (local.get $i) (i32.const 2))) (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $zloop)))
    (block $tdone
      (loop $tloop
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $nin)))
        (f32.store (i32.add (local.get $dx) (i32.shl (local.get $i) (i32.const 2))) (f32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tloop)))
    (local.set $i (i32.const 0))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $i) (local.get $nout)))
        (local.set $a (i32.add (local.get $dx)
          (i32.shl (i32.load (i32.add (local.get $idx) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 2))))
        (f32.store (local.get $a)
          (f32.add (f32.load (local.get $a)) (f32.load (i32.add (local.get $dy) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sloop))))
)
