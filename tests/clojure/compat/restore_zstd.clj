;; What the Clojure Datacamp library's restore-from-directory does with a
;; backup whose chunks are zstd frames (`datacamp backup --compression
;; zstd`): it reads the manifest, checks each chunk's SHA-256 (the stored
;; bytes', which still match), gunzips it with GZIPInputStream and reads the
;; Fressian, one chunk at a time, transacting each chunk's datoms before it
;; reads the next. The library has no other decompression and does not look
;; at :format/compression.
;;
;; Usage:
;;   clojure -cp <data.fressian.jar>:<fressian.jar> restore_zstd.clj \
;;       BASE-DIR DATABASE-ID BACKUP-ID
;;
;; Prints "format-compression VALUE" (what the manifest says), then
;; "transacted N" after each chunk it would have transacted. When the
;; library's restore fails, prints "transacted-before-failure N" and
;; "failed CLASS MESSAGE" and exits 3; a restore that reads every chunk
;; exits 0 (the Rust test fails then: garbage would have been loaded).
(load-file (str (.getParent (java.io.File. ^String *file*)) "/common.clj"))

(let [[base db backup] *command-line-args*
      backup-path (str base "/" db "/" backup)
      manifest (edn/read-string (String. (read-file-bytes (str backup-path "/manifest.edn")) "UTF-8"))
      transacted (atom 0)]
  (println "format-compression" (pr-str (:format/compression manifest)))
  (try
    (doseq [c (:chunks manifest)]
      (let [data (read-file-bytes (str backup-path "/" (:chunk/s3-key c)))]
        (when (not= (:chunk/checksum c) (sha256 data))
          (throw (ex-info "Checksum mismatch for chunk" {:chunk-id (:chunk/id c)})))
        (let [chunk (deserialize-datom-chunk (decompress-gzip data))]
          (swap! transacted + (count (:datoms chunk)))
          (println "transacted" @transacted))))
    (flush)
    (catch Throwable t
      (println "transacted-before-failure" @transacted)
      (println "failed" (.getName (class t)) (.getMessage t))
      (flush)
      (System/exit 3))))
