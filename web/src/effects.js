// Frame + alpha -> the picture, as segme.effects.render draws it: the mask, the person over a
// colour or a photo (scaled to cover the frame, centre crop), or over the frame itself
// blurred like a shallow depth of field. The blur runs on the frame shrunk by a whole factor
// until its sigma is about `blur_shrunk_sigma` px, normalised by the background weight
// (blur(frame * (1 - a)) / blur(1 - a)) so the person's colours do not bleed into it; the
// constants come from the server (`card.pipeline`), and tests/test_browser.py compares the
// results with the Python library's.

import {
  gaussianBlur, makeImage, resize, resizeArea, resizeLinear, rint,
} from './imgproc.js';

/**
 * @typedef {object} Effect
 * @property {'replace' | 'blur' | 'mask'} kind
 * @property {number[]} color [r, g, b] of the new background
 * @property {object | null} photo background photo, uint8 RGB image; replaces the colour
 * @property {number} strength blur radius in tenths of a percent of the short side
 */

/**
 * The picture for `effect`.
 *
 * @param {Effect} effect
 * @param {object} rgb the frame, uint8 RGB image
 * @param {Float32Array} alpha [H * W] in [0, 1]
 * @param {object} pipeline card.pipeline
 * @returns {ImageData}
 */
export function render(effect, rgb, alpha, pipeline) {
  const { width, height } = rgb;
  const out = new ImageData(width, height);
  const o = out.data;
  if (effect.kind === 'mask') {
    for (let i = 0; i < alpha.length; i++) {
      o[4 * i] = o[4 * i + 1] = o[4 * i + 2] = Math.floor(alpha[i] * 255 + 0.5);
      o[4 * i + 3] = 255;
    }
    return out;
  }
  const back = effect.kind === 'blur'
    ? blurred(rgb, alpha, effect.strength, pipeline)
    : effect.photo && fitBackground(effect.photo, width, height);
  const s = rgb.data;
  for (let i = 0, j = 0; i < alpha.length; i++, j += 3) {
    const a = alpha[i];
    for (let ch = 0; ch < 3; ch++) {
      const bg = back ? back.data[j + ch] : effect.color[ch];
      // cv2.blendLinear: (fg * a + bg * (1 - a)) / (a + (1 - a) + 1e-5)
      o[4 * i + ch] = rint((s[j + ch] * a + bg * (1 - a)) / (1 + 1e-5));
    }
    o[4 * i + 3] = 255;
  }
  return out;
}

/** segme.effects.fit_background, "fill": scaled to cover width x height, centre crop. */
export function fitBackground(photo, width, height) {
  const { width: bw, height: bh } = photo;
  if (bw === width && bh === height) return photo;
  const cover = Math.max(height / bh, width / bw);
  const nh = Math.max(height, rint(bh * cover));
  const nw = Math.max(width, rint(bw * cover));
  const big = resize(photo, nw, nh, cover < 1);
  const y0 = Math.floor((nh - height) / 2);
  const x0 = Math.floor((nw - width) / 2);
  const out = makeImage(width, height, 3, Uint8ClampedArray);
  for (let y = 0; y < height; y++) {
    const from = ((y + y0) * nw + x0) * 3;
    out.data.set(big.data.subarray(from, from + width * 3), y * width * 3);
  }
  return out;
}

/** The background of segme.effects.blur_background, before the person goes back on it. */
function blurred(rgb, alpha, strength, pipeline) {
  const { width: w, height: h } = rgb;
  if (strength <= 0) return rgb;
  const sigma = Math.max(pipeline.blur_min_sigma, (strength / 1000) * Math.min(w, h));
  const k = Math.min(Math.max(1, Math.trunc(sigma / pipeline.blur_shrunk_sigma)), h, w);
  const sw = rint(w * (1 / k));
  const sh = rint(h * (1 / k));
  const small = resizeArea(rgb, sw, sh, k, k);
  const back = makeImage(w, h, 1);
  for (let i = 0; i < alpha.length; i++) back.data[i] = 1 - alpha[i];
  const wt = resizeArea(back, sw, sh, k, k);
  const s = sigma * (sw / w);
  const smallF = { ...small, data: Float32Array.from(small.data) };
  const weighted = makeImage(sw, sh, 3);
  for (let i = 0; i < wt.data.length; i++) {
    for (let ch = 0; ch < 3; ch++) weighted.data[3 * i + ch] = smallF.data[3 * i + ch] * wt.data[i];
  }
  const num = gaussianBlur(weighted, s);
  const den = gaussianBlur(wt, s);
  const plain = gaussianBlur(smallF, s);
  const minWeight = pipeline.blur_min_weight;
  const out = makeImage(sw, sh, 3, Uint8ClampedArray);
  for (let i = 0; i < den.data.length; i++) {
    const d = den.data[i];
    for (let ch = 0; ch < 3; ch++) {
      const v = d > minWeight ? num.data[3 * i + ch] / Math.max(d, minWeight)
        : plain.data[3 * i + ch];
      out.data[3 * i + ch] = Math.trunc(Math.min(255, Math.max(0, v))); // astype(uint8)
    }
  }
  return resizeLinear(out, w, h);
}
