// Public API of @actorflow/fetch-movielens.
export { ARCHIVES, DEFAULT_BASE_URL, isArchiveName, type ArchiveName } from './src/archives.ts';
export { fetchMovieLens, download, verifyMd5, md5File, parseMd5, FetchError, ChecksumError, type FetchOptions } from './src/fetch.ts';
export { unzip, listZip, readEntry, ZipError, type ZipEntry } from './src/zip.ts';
