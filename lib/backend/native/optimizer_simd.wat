;; Fused optimizer updates in WebAssembly SIMD (f32x4), over the tfjs wasm
;; backend's own linear memory (imported as env.memory). Source of the bytes in
;; optimizer_simd_wasm.ts; rebuild with `deno run -A lib/backend/native/build_wasm_simd.ts`.
;; Arguments are byte addresses of float32 arrays of n elements; outputs never alias inputs.
(module
  (import "env" "memory" (memory 0))

  ;; PyTorch's Adam with bias corrections folded in:
  ;;   m' = b1 m + c1 g ; v' = b2 v + c2 g^2 ; p' = p - step m' / (sqrt(v') inv + eps)
  (func (export "adam")
    (param $p i32) (param $m i32) (param $v i32) (param $g i32)
    (param $po i32) (param $mo i32) (param $vo i32) (param $n i32)
    (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $step f32) (param $inv f32) (param $eps f32)
    (local $i i32) (local $end i32) (local $o i32)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128)
    (local $STEP v128) (local $INV v128) (local $EPS v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $STEP (f32x4.splat (local.get $step)))
    (local.set $INV (f32x4.splat (local.get $inv)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (block $vdone
      (loop $vloop
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $o))))
        (local.set $mv
          (f32x4.add
            (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (local.get $o))))
            (f32x4.mul (local.get $C1) (local.get $gv))))
        (local.set $vv
          (f32x4.add
            (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (local.get $o))))
            (f32x4.mul (f32x4.mul (local.get $C2) (local.get $gv)) (local.get $gv))))
        (v128.store (i32.add (local.get $mo) (local.get $o)) (local.get $mv))
        (v128.store (i32.add (local.get $vo) (local.get $o)) (local.get $vv))
        (v128.store (i32.add (local.get $po) (local.get $o))
          (f32x4.sub
            (v128.load (i32.add (local.get $p) (local.get $o)))
            (f32x4.div
              (f32x4.mul (local.get $STEP) (local.get $mv))
              (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vv)) (local.get $INV)) (local.get $EPS)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vloop)))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $o))))
        (local.set $ms
          (f32.add
            (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (local.get $o))))
            (f32.mul (local.get $c1) (local.get $gs))))
        (local.set $vs
          (f32.add
            (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (local.get $o))))
            (f32.mul (f32.mul (local.get $c2) (local.get $gs)) (local.get $gs))))
        (f32.store (i32.add (local.get $mo) (local.get $o)) (local.get $ms))
        (f32.store (i32.add (local.get $vo) (local.get $o)) (local.get $vs))
        (f32.store (i32.add (local.get $po) (local.get $o))
          (f32.sub
            (f32.load (i32.add (local.get $p) (local.get $o)))
            (f32.div
              (f32.mul (local.get $step) (local.get $ms))
              (f32.add (f32.mul (f32.sqrt (local.get $vs)) (local.get $inv)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sloop))))

  ;; PyTorch's SGD (momentum, weight decay, no dampening or Nesterov):
  ;;   d = g + wd p ; buf' = mom buf + d ; p' = p - lr buf'
  (func (export "sgd")
    (param $p i32) (param $b i32) (param $g i32) (param $po i32) (param $bo i32) (param $n i32)
    (param $lr f32) (param $mom f32) (param $wd f32)
    (local $i i32) (local $end i32) (local $o i32)
    (local $pv v128) (local $bv v128) (local $LR v128) (local $MOM v128) (local $WD v128)
    (local $ps f32) (local $bs f32)
    (local.set $LR (f32x4.splat (local.get $lr)))
    (local.set $MOM (f32x4.splat (local.get $mom)))
    (local.set $WD (f32x4.splat (local.get $wd)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (block $vdone
      (loop $vloop
        (br_if $vdone (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $pv (v128.load (i32.add (local.get $p) (local.get $o))))
        (local.set $bv
          (f32x4.add
            (f32x4.mul (local.get $MOM) (v128.load (i32.add (local.get $b) (local.get $o))))
            (f32x4.add
              (v128.load (i32.add (local.get $g) (local.get $o)))
              (f32x4.mul (local.get $WD) (local.get $pv)))))
        (v128.store (i32.add (local.get $bo) (local.get $o)) (local.get $bv))
        (v128.store (i32.add (local.get $po) (local.get $o))
          (f32x4.sub (local.get $pv) (f32x4.mul (local.get $LR) (local.get $bv))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vloop)))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $ps (f32.load (i32.add (local.get $p) (local.get $o))))
        (local.set $bs
          (f32.add
            (f32.mul (local.get $mom) (f32.load (i32.add (local.get $b) (local.get $o))))
            (f32.add
              (f32.load (i32.add (local.get $g) (local.get $o)))
              (f32.mul (local.get $wd) (local.get $ps)))))
        (f32.store (i32.add (local.get $bo) (local.get $o)) (local.get $bs))
        (f32.store (i32.add (local.get $po) (local.get $o))
          (f32.sub (local.get $ps) (f32.mul (local.get $lr) (local.get $bs))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sloop))))
)
