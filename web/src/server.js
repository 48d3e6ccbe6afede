// The fallback: the server segments, the page composites.
//
// The frame goes up as a JPEG to POST /v1/mask and the alpha comes back as a grey image; the
// same compositor as the in-browser path then draws the effect. Asking the server for the mask
// rather than for the finished /v1/replace or /v1/blur picture keeps one compositing path for
// both backends (the result looks the same either way), re-draws a photo at once when the
// colour or blur changes, never uploads the background photo, and lets the page report the mean
// alpha of what the server found.

/** Frame in, alpha mask out, computed by `segme serve`. */
export class ServerSegmenter {
  /** @param {string} api base URL of the API, e.g. "/v1" */
  constructor(api) {
    this.where = 'on the server';
    this.url = `${api}/mask`;
    this.mask = document.createElement('canvas');
    this.maskCtx = this.mask.getContext('2d', { willReadFrequently: true });
  }

  reset() {}

  /**
   * @param {HTMLCanvasElement} frame the frame at its own size
   * @returns {Promise<{mask: HTMLCanvasElement, meanAlpha: number}>} mask: alpha in the alpha
   *   channel, at the size the server answered with; meanAlpha in [0, 1]
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
    const grey = await createImageBitmap(await res.blob());

    const { width, height } = grey;
    if (this.mask.width !== width || this.mask.height !== height) {
      this.mask.width = width;
      this.mask.height = height;
    }
    const ctx = this.maskCtx;
    ctx.globalCompositeOperation = 'copy';
    ctx.drawImage(grey, 0, 0);
    grey.close();
    const img = ctx.getImageData(0, 0, width, height);
    const px = img.data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) {
      const a = px[i]; // grey: R = G = B
      sum += a;
      px[i] = px[i + 1] = px[i + 2] = 0;
      px[i + 3] = a;
    }
    ctx.putImageData(img, 0, 0);
    return { mask: this.mask, meanAlpha: sum / (255 * width * height) };
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
