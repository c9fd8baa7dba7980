// Dropping .proto files, folders or descriptor sets anywhere on the window: folders are
// walked so imports between the dropped files resolve by their paths inside the folder.

import type { DroppedFile } from '../bindings';

export const SCHEMA_FILE = /\.(proto|binpb|pb|desc|protoset|bin|fds)$/i;

function toBase64(buf: ArrayBuffer): string {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function readEntry(entry: FileSystemEntry, prefix: string, out: DroppedFile[]) {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
    if (SCHEMA_FILE.test(file.name)) out.push({ path: prefix + file.name, base64: toBase64(await file.arrayBuffer()) });
  }
}

/** The schema files in a drop, with paths relative to the dropped folder. */
export async function droppedFiles(data: DataTransfer): Promise<DroppedFile[]> {
  const out: DroppedFile[] = [];
  const items = Array.from(data.items ?? []);
  const entries = items.map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => Boolean(e));
  if (entries.length) {
    for (const e of entries) {
      if (e.isDirectory) await readDir(e as FileSystemDirectoryEntry, '', out);
      else await readEntry(e, '', out);
    }
    return out;
  }
  for (const f of Array.from(data.files ?? [])) {
    if (SCHEMA_FILE.test(f.name)) out.push({ path: f.name, base64: toBase64(await f.arrayBuffer()) });
  }
  return out;
}

async function readDir(dir: FileSystemDirectoryEntry, prefix: string, out: DroppedFile[]) {
  const reader = dir.createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const child of batch) {
      if (child.isDirectory) await readDir(child as FileSystemDirectoryEntry, `${prefix}${child.name}/`, out);
      else await readEntry(child, prefix, out);
    }
  }
}

/** Files picked with an <input type=file webkitdirectory>: drop the top folder's name. */
export async function pickedFiles(files: FileList): Promise<DroppedFile[]> {
  const out: DroppedFile[] = [];
  for (const f of Array.from(files)) {
    if (!SCHEMA_FILE.test(f.name)) continue;
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    out.push({ path: rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : rel, base64: toBase64(await f.arrayBuffer()) });
  }
  return out;
}
