/**
 * col2im for NHWC convolutions, written against wasm heap views.
 *
 * Rows of the column matrix are output pixels (n, oh, ow); columns are
 * (kh, kw, c), matching the tfjs filter layout [fh, fw, cin, cout].
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/**
 * Adds every row of `cols` ([N·OH·OW, fh·fw·C]) back onto the input pixels it
 * was read from (the adjoint of im2col). `x` must be zeroed first.
 */
export function col2im(
  heap: Float32Array,
  colsOff: number,
  xOff: number,
  info: tf.backend_util.Conv2DInfo,
): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C } = info;
  const { outHeight: OH, outWidth: OW, filterHeight: FH, filterWidth: FW } = info;
  const { strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  let s = colsOff;
  for (let n = 0; n < N; n++) {
    const xn = xOff + n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * SH - pt;
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * SW - pl;
        for (let kh = 0; kh < FH; kh++) {
          const ih = ih0 + kh * DH;
          if (ih < 0 || ih >= H) {
            s += FW * C;
            continue;
          }
          const xr = xn + ih * W * C;
          for (let kw = 0; kw < FW; kw++) {
            const iw = iw0 + kw * DW;
            if (iw >= 0 && iw < W) {
              let d = xr + iw * C;
              const e = s + C;
              for (let j = s; j < e; j++) heap[d++] += heap[j];
            }
            s += C;
          }
        }
      }
    }
  }
}
