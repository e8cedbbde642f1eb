;; Sparse kernels of @actorflow/embeddings in WebAssembly SIMD (f64x2). Every operation is the one
;; the JavaScript loops perform, in the same order and precision (float32 storage, float64
;; arithmetic, one rounding to float32 per store), so the results are bit-identical to the JS
;; fallbacks in interactions.ts and optimizers.ts. Compiled by tools/bench/wasm-build.ts into
;; kernels.wasm.ts (base64); the memory is imported: one per table arena, one for kernel scratch.
;; Pointers are byte offsets into the memory.
(module
  (import "env" "mem" (memory 1))

  ;; Biased-dot MSE forward + backward over a batch (interactions.ts mseLoop). Writes the squared
  ;; error sum (f64) at out and the gradient of the mean (f64) at out + 8.
  (func (export "mse")
    (param $n i32) (param $d i32) (param $mu f64) (param $scale f64)
    (param $pu i32) (param $pi i32) (param $bu i32) (param $bi i32)
    (param $P i32) (param $Q i32) (param $Bu i32) (param $Bi i32) (param $target i32)
    (param $gP i32) (param $gQ i32) (param $gBu i32) (param $gBi i32) (param $out i32)
    (local $e i32) (local $k i32) (local $po i32) (local $qo i32) (local $gpo i32) (local $gqo i32)
    (local $dot f64) (local $err f64) (local $g f64) (local $sq f64) (local $gMu f64)
    (local $ub i32) (local $ib i32) (local $g2 v128) (local $p2 v128) (local $q2 v128) (local $pairs i32) (local $a i32)
    (local $quads i32) (local $sa v128) (local $sb v128)
    (local.set $pairs (i32.and (local.get $d) (i32.const -2)))
    (local.set $quads (i32.and (local.get $d) (i32.const -4)))
    (block $done
      (loop $ex
        (br_if $done (i32.ge_u (local.get $e) (local.get $n)))
        ;; byte offsets of this example's rows
        (local.set $a (i32.shl (i32.mul (i32.load (i32.add (local.get $pu) (i32.shl (local.get $e) (i32.const 2)))) (local.get $d)) (i32.const 2)))
        (local.set $po (i32.add (local.get $P) (local.get $a)))
        (local.set $gpo (i32.add (local.get $gP) (local.get $a)))
        (local.set $a (i32.shl (i32.mul (i32.load (i32.add (local.get $pi) (i32.shl (local.get $e) (i32.const 2)))) (local.get $d)) (i32.const 2)))
        (local.set $qo (i32.add (local.get $Q) (local.get $a)))
        (local.set $gqo (i32.add (local.get $gQ) (local.get $a)))
        ;; dot in float64 with four partial sums s_j = Σ_{k ≡ j mod 4} (lanes of $sa = s0 s1, $sb = s2 s3),
        ;; dot = (s0 + s1) + (s2 + s3), then the last d mod 4 products in order (the JS loop's order)
        (local.set $sa (v128.const i64x2 0 0))
        (local.set $sb (v128.const i64x2 0 0))
        (local.set $k (i32.const 0))
        (block $dd
          (loop $dl
            (br_if $dd (i32.ge_u (local.get $k) (local.get $quads)))
            (local.set $a (i32.shl (local.get $k) (i32.const 2)))
            (local.set $sa (f64x2.add (local.get $sa)
              (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $po) (local.get $a))))
                         (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $qo) (local.get $a)))))))
            (local.set $sb (f64x2.add (local.get $sb)
              (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $po) (local.get $a))))
                         (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $qo) (local.get $a)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $dl)))
        (local.set $dot (f64.add (f64.add (f64x2.extract_lane 0 (local.get $sa)) (f64x2.extract_lane 1 (local.get $sa)))
                                 (f64.add (f64x2.extract_lane 0 (local.get $sb)) (f64x2.extract_lane 1 (local.get $sb)))))
        (block $td
          (loop $tl
            (br_if $td (i32.ge_u (local.get $k) (local.get $d)))
            (local.set $a (i32.shl (local.get $k) (i32.const 2)))
            (local.set $dot (f64.add (local.get $dot)
              (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $po) (local.get $a))))
                       (f64.promote_f32 (f32.load (i32.add (local.get $qo) (local.get $a)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $tl)))
        (local.set $ub (i32.shl (i32.load (i32.add (local.get $bu) (i32.shl (local.get $e) (i32.const 2)))) (i32.const 2)))
        (local.set $ib (i32.shl (i32.load (i32.add (local.get $bi) (i32.shl (local.get $e) (i32.const 2)))) (i32.const 2)))
        (local.set $err
          (f64.sub
            (f64.add
              (f64.add
                (f64.add (local.get $mu) (f64.promote_f32 (f32.load (i32.add (local.get $Bu) (local.get $ub)))))
                (f64.promote_f32 (f32.load (i32.add (local.get $Bi) (local.get $ib)))))
              (local.get $dot))
            (f64.promote_f32 (f32.load (i32.add (local.get $target) (i32.shl (local.get $e) (i32.const 2)))))))
        (local.set $sq (f64.add (local.get $sq) (f64.mul (local.get $err) (local.get $err))))
        (local.set $g (f64.mul (local.get $scale) (local.get $err)))
        (local.set $gMu (f64.add (local.get $gMu) (local.get $g)))
        (local.set $a (i32.add (local.get $gBu) (local.get $ub)))
        (f32.store (local.get $a) (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $a))) (local.get $g))))
        (local.set $a (i32.add (local.get $gBi) (local.get $ib)))
        (f32.store (local.get $a) (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $a))) (local.get $g))))
        ;; gP += g·Q, gQ += g·P, two lanes at a time
        (local.set $g2 (f64x2.splat (local.get $g)))
        (local.set $k (i32.const 0))
        (block $gd
          (loop $gl
            (br_if $gd (i32.ge_u (local.get $k) (local.get $pairs)))
            (local.set $a (i32.shl (local.get $k) (i32.const 2)))
            (local.set $q2 (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $qo) (local.get $a)))))
            (local.set $p2 (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $po) (local.get $a)))))
            (v128.store64_lane 0 (i32.add (local.get $gpo) (local.get $a))
              (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $gpo) (local.get $a))))
                                                  (f64x2.mul (local.get $g2) (local.get $q2)))))
            (v128.store64_lane 0 (i32.add (local.get $gqo) (local.get $a))
              (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $gqo) (local.get $a))))
                                                  (f64x2.mul (local.get $g2) (local.get $p2)))))
            (local.set $k (i32.add (local.get $k) (i32.const 2)))
            (br $gl)))
        ;; odd dim: the last element
        (if (i32.lt_u (local.get $pairs) (local.get $d))
          (then
            (local.set $a (i32.shl (local.get $pairs) (i32.const 2)))
            (f32.store (i32.add (local.get $gpo) (local.get $a))
              (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (i32.add (local.get $gpo) (local.get $a))))
                                       (f64.mul (local.get $g) (f64.promote_f32 (f32.load (i32.add (local.get $qo) (local.get $a))))))))
            (f32.store (i32.add (local.get $gqo) (local.get $a))
              (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (i32.add (local.get $gqo) (local.get $a))))
                                       (f64.mul (local.get $g) (f64.promote_f32 (f32.load (i32.add (local.get $po) (local.get $a))))))))))
        (local.set $e (i32.add (local.get $e) (i32.const 1)))
        (br $ex)))
    (f64.store (local.get $out) (local.get $sq))
    (f64.store offset=8 (local.get $out) (local.get $gMu)))

  ;; Lazy Adam on nrows rows of a table (optimizers.ts adamRow): row rows[i] of w/m/v (byte
  ;; pointers to element 0 of the table and its moments) takes the gradient row i of g, with the
  ;; bias corrections c[2i], c[2i+1] (f64). lr, l2, beta1, beta2, b1 = 1 − beta1, b2 = 1 − beta2, eps.
  (func (export "adam")
    (param $rows i32) (param $nrows i32) (param $d i32) (param $w i32) (param $m i32) (param $v i32) (param $g i32) (param $c i32)
    (param $lr f64) (param $l2 f64) (param $beta1 f64) (param $beta2 f64) (param $b1 f64) (param $b2 f64) (param $eps f64)
    (local $i i32) (local $k i32) (local $off i32) (local $goff i32) (local $pairs i32) (local $a i32) (local $ga i32)
    (local $c1 v128) (local $c2 v128) (local $lr2 v128) (local $l22 v128) (local $be1 v128) (local $be2 v128) (local $bb1 v128) (local $bb2 v128) (local $eps2 v128)
    (local $grad v128) (local $mi v128) (local $vi v128) (local $w2 v128) (local $mf v128) (local $vf v128)
    (local $sgrad f64) (local $smi f64) (local $svi f64) (local $sw f64) (local $c1s f64) (local $c2s f64)
    (local.set $pairs (i32.and (local.get $d) (i32.const -2)))
    (local.set $lr2 (f64x2.splat (local.get $lr)))
    (local.set $l22 (f64x2.splat (local.get $l2)))
    (local.set $be1 (f64x2.splat (local.get $beta1)))
    (local.set $be2 (f64x2.splat (local.get $beta2)))
    (local.set $bb1 (f64x2.splat (local.get $b1)))
    (local.set $bb2 (f64x2.splat (local.get $b2)))
    (local.set $eps2 (f64x2.splat (local.get $eps)))
    (block $done
      (loop $rl
        (br_if $done (i32.ge_u (local.get $i) (local.get $nrows)))
        (local.set $off (i32.shl (i32.mul (i32.load (i32.add (local.get $rows) (i32.shl (local.get $i) (i32.const 2)))) (local.get $d)) (i32.const 2)))
        (local.set $goff (i32.add (local.get $g) (i32.shl (i32.mul (local.get $i) (local.get $d)) (i32.const 2))))
        (local.set $c1s (f64.load (i32.add (local.get $c) (i32.shl (local.get $i) (i32.const 4)))))
        (local.set $c2s (f64.load offset=8 (i32.add (local.get $c) (i32.shl (local.get $i) (i32.const 4)))))
        (local.set $c1 (f64x2.splat (local.get $c1s)))
        (local.set $c2 (f64x2.splat (local.get $c2s)))
        (local.set $k (i32.const 0))
        (block $kd
          (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $pairs)))
            (local.set $a (i32.add (local.get $off) (i32.shl (local.get $k) (i32.const 2))))
            (local.set $ga (i32.add (local.get $goff) (i32.shl (local.get $k) (i32.const 2))))
            (local.set $w2 (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $w) (local.get $a)))))
            ;; grad = g + l2·w
            (local.set $grad (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $ga))) (f64x2.mul (local.get $l22) (local.get $w2))))
            ;; mi = beta1·m + b1·grad ; vi = beta2·v + (b2·grad)·grad
            (local.set $mi (f64x2.add (f64x2.mul (local.get $be1) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $m) (local.get $a)))))
                                      (f64x2.mul (local.get $bb1) (local.get $grad))))
            (local.set $vi (f64x2.add (f64x2.mul (local.get $be2) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $v) (local.get $a)))))
                                      (f64x2.mul (f64x2.mul (local.get $bb2) (local.get $grad)) (local.get $grad))))
            (local.set $mf (f32x4.demote_f64x2_zero (local.get $mi)))
            (local.set $vf (f32x4.demote_f64x2_zero (local.get $vi)))
            (v128.store64_lane 0 (i32.add (local.get $m) (local.get $a)) (local.get $mf))
            (v128.store64_lane 0 (i32.add (local.get $v) (local.get $a)) (local.get $vf))
            ;; w −= (lr·(fround(mi)/c1)) / (√(fround(vi)/c2) + eps)
            (v128.store64_lane 0 (i32.add (local.get $w) (local.get $a))
              (f32x4.demote_f64x2_zero
                (f64x2.sub (local.get $w2)
                  (f64x2.div (f64x2.mul (local.get $lr2) (f64x2.div (f64x2.promote_low_f32x4 (local.get $mf)) (local.get $c1)))
                             (f64x2.add (f64x2.sqrt (f64x2.div (f64x2.promote_low_f32x4 (local.get $vf)) (local.get $c2))) (local.get $eps2))))))
            (local.set $k (i32.add (local.get $k) (i32.const 2)))
            (br $kl)))
        (if (i32.lt_u (local.get $pairs) (local.get $d))
          (then
            (local.set $a (i32.add (local.get $off) (i32.shl (local.get $pairs) (i32.const 2))))
            (local.set $ga (i32.add (local.get $goff) (i32.shl (local.get $pairs) (i32.const 2))))
            (local.set $sw (f64.promote_f32 (f32.load (i32.add (local.get $w) (local.get $a)))))
            (local.set $sgrad (f64.add (f64.promote_f32 (f32.load (local.get $ga))) (f64.mul (local.get $l2) (local.get $sw))))
            (local.set $smi (f64.promote_f32 (f32.demote_f64 (f64.add (f64.mul (local.get $beta1) (f64.promote_f32 (f32.load (i32.add (local.get $m) (local.get $a)))))
                                                                       (f64.mul (local.get $b1) (local.get $sgrad))))))
            (local.set $svi (f64.promote_f32 (f32.demote_f64 (f64.add (f64.mul (local.get $beta2) (f64.promote_f32 (f32.load (i32.add (local.get $v) (local.get $a)))))
                                                                       (f64.mul (f64.mul (local.get $b2) (local.get $sgrad)) (local.get $sgrad))))))
            (f32.store (i32.add (local.get $m) (local.get $a)) (f32.demote_f64 (local.get $smi)))
            (f32.store (i32.add (local.get $v) (local.get $a)) (f32.demote_f64 (local.get $svi)))
            (f32.store (i32.add (local.get $w) (local.get $a))
              (f32.demote_f64 (f64.sub (local.get $sw)
                (f64.div (f64.mul (local.get $lr) (f64.div (local.get $smi) (local.get $c1s)))
                         (f64.add (f64.sqrt (f64.div (local.get $svi) (local.get $c2s))) (local.get $eps))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rl))))
)
