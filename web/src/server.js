// The fallback: the server segments, the page draws the effect.
//
// The frame goes up as a JPEG to POST /v1/mask, with the card's upsampling, and its alpha
// comes back as a grey image at the frame's size: the alpha the in-browser path computes
// (postprocess.js mirrors the server's), so the same effects.js draws the same picture from
// either. Asking for the mask rather than the finished /v1/replace or /v1/blur picture re-draws
// a photo at once when the colour or blur changes, never uploads the background photo, and
// lets the page report the mean alpha of what the server found.

/** Frame in, alpha out, computed by `segme serve`. */
export class ServerSegmenter {
  /**
   * @param {string} api base URL of the API, e.g. "/v1"
   * @param {object} card the model card, with `pipeline`
   */
  constructor(api, card) {
    this.where = 'on the server';
    this.url = `${api}/mask?upsample=${encodeURIComponent(card.pipeline.upsample)}`;
    this.mask = document.createElement('canvas');
    this.maskCtx = this.mask.getContext('2d', { willReadFrequently: true });
  }

  reset() {}

  /**
   * @param {HTMLCanvasElement} frame the frame at its own size
   * @returns {Promise<{alpha: Float32Array, meanAlpha: number}>} alpha [H * W] in [0, 1] at
   *   the size the server answered with (the frame's); meanAlpha its mean
   */
  async segment(frame) {
    const jpeg = await new Promise((resolve, reject) =>
      frame.toBlob((b) => (b ? resolve(b) : reject(new Error('could not encode the frame'))),
        'image/jpeg', 0.9),
    );
    const form = new FormData();
    form.append('file', jpeg, 'frame.jpg');
    let res;
    try {
      res = await fetch(this.url, { method: 'POST', body: form });
    } catch (err) {
      throw new Error(`the server could not be reached: ${err.message ?? err}`);
    }
    if (!res.ok) throw new Error(`the server answered ${res.status}: ${await errorText(res)}`);
    const grey = await createImageBitmap(await res.blob(), {
      colorSpaceConversion: 'none', premultiplyAlpha: 'none',
    });

    const { width, height } = grey;
    if (this.mask.width !== width || this.mask.height !== height) {
      this.mask.width = width;
      this.mask.height = height;
    }
    const ctx = this.maskCtx;
    ctx.globalCompositeOperation = 'copy';
    ctx.drawImage(grey, 0, 0);
    grey.close();
    const px = ctx.getImageData(0, 0, width, height).data;
    const alpha = new Float32Array(width * height);
    let sum = 0;
    for (let i = 0; i < alpha.length; i++) {
      alpha[i] = px[4 * i] / 255; // grey: R = G = B
      sum += alpha[i];
    }
    return { alpha, meanAlpha: sum / alpha.length };
  }
}

/** The server's reason for a refusal: its JSON {"error": "..."}, else the start of the body. */
async function errorText(res) {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    return String(body.error ?? body.detail ?? text);
  } catch {
    return text.slice(0, 200) || res.statusText;
  }
}
