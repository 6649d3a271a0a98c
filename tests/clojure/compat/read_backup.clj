;; Reads a backup (one Datacamp wrote) the way the Clojure Datacamp
;; library's restore-from-directory / restore-from-s3 and its list read one,
;; and prints what it found for the Rust test to compare.
;;
;; Usage:
;;   clojure -cp <data.fressian.jar>:<fressian.jar> read_backup.clj \
;;       directory BASE-DIR DATABASE-ID BACKUP-ID
;;   clojure -cp … read_backup.clj s3 BUCKET-DIR PREFIX DATABASE-ID BACKUP-ID
;;
;; `directory`: the backup is BASE-DIR/DATABASE-ID/BACKUP-ID/ and each chunk
;; is read from there plus its :chunk/s3-key, as restore-from-directory does.
;; `s3`: BUCKET-DIR holds a copy of the bucket's objects, each at its key;
;; the manifest is the object PREFIX DATABASE-ID/BACKUP-ID/manifest.edn and
;; each chunk the object named by its :chunk/s3-key, as restore-from-s3
;; fetches them.
;;
;; As the library: the manifest is read with clojure.edn/read-string and its
;; default readers (#inst, #uuid); each chunk's SHA-256 must equal
;; :chunk/checksum (a plain string comparison); the chunk is gunzipped and
;; read with clojure.data.fressian; :format/type must be :datom-chunk; the
;; datoms are (:datoms chunk) as [e a v tx added]. Beyond the library, the
;; manifest keys its list and restore read are checked for the types they
;; are used as (a wrong type fails with an exception naming the key).
;;
;; Prints "key value" lines, then every datom read, one per line, in the
;; typed EDN of common.clj:
;;   manifest-datom-count, manifest-chunk-count, manifest-max-eid,
;;   manifest-max-tx, manifest-size-bytes, chunks, count, max-eid (largest e
;;   below tx0: transaction entities are not counted, as Datahike's
;;   :max-eid), max-tx, bootstrap-datoms (datoms the library's restore
;;   drops: tx = tx0).
;; Exits 1 with the reason on stderr when the library would fail.
(load-file (str (.getParent (java.io.File. ^String *file*)) "/common.clj"))

(defn check-type [manifest k pred what]
  (let [v (get manifest k)]
    (when-not (pred v)
      (throw (ex-info (str "manifest key " k " is " (pr-str v) ", expected " what) {:key k})))
    v))

(defn check-list-keys
  "What datacamp.core/list-backups and list-backups-in-directory take from
  a manifest, and what restore uses."
  [manifest]
  (check-type manifest :backup/id string? "a string")
  (check-type manifest :backup/type keyword? "a keyword")
  (check-type manifest :backup/created-at inst? "an #inst")
  (check-type manifest :backup/completed true? "true")
  (check-type manifest :stats/datom-count int? "an integer")
  (check-type manifest :stats/size-bytes int? "an integer")
  (check-type manifest :stats/chunk-count int? "an integer")
  (check-type manifest :stats/max-eid int? "an integer")
  (check-type manifest :stats/max-tx int? "an integer")
  (check-type manifest :chunks vector? "a vector")
  (doseq [c (:chunks manifest)]
    (check-type c :chunk/id int? "an integer")
    (check-type c :chunk/s3-key string? "a string")
    (check-type c :chunk/checksum string? "a string")
    (check-type c :chunk/max-eid #(or (nil? %) (int? %)) "nil or an integer")
    (check-type c :chunk/tx-range #(and (vector? %) (every? int? %)) "[min-tx max-tx]")))

(defn read-chunk
  "One chunk, as the library's restore reads it."
  [path chunk-meta]
  (let [chunk-id (:chunk/id chunk-meta)
        expected-checksum (:chunk/checksum chunk-meta)
        compressed-data (read-file-bytes path)
        actual-checksum (sha256 compressed-data)]
    (when (not= expected-checksum actual-checksum)
      (throw (ex-info "Checksum mismatch for chunk"
                      {:chunk-id chunk-id :expected expected-checksum :actual actual-checksum})))
    (let [chunk-data (deserialize-datom-chunk (decompress-gzip compressed-data))]
      (when (not= chunk-id (:chunk/id chunk-data))
        (throw (ex-info "chunk document has another :chunk/id"
                        {:listed chunk-id :found (:chunk/id chunk-data)})))
      (:datoms chunk-data))))

(try
  (let [[mode & args] *command-line-args*
        [manifest-path chunk-path]
        (case mode
          "directory"
          (let [[base db backup] args
                backup-path (str base "/" db "/" backup)]
            [(str backup-path "/manifest.edn") #(str backup-path "/" %)])
          "s3"
          (let [[bucket-dir prefix db backup] args]
            [(str bucket-dir "/" prefix db "/" backup "/manifest.edn") #(str bucket-dir "/" %)])
          (throw (ex-info "usage: read_backup.clj directory BASE DB BACKUP | s3 BUCKET-DIR PREFIX DB BACKUP" {})))
        manifest (edn/read-string (String. (read-file-bytes manifest-path) "UTF-8"))
        _ (check-list-keys manifest)
        chunks (:chunks manifest)
        datoms (vec (mapcat (fn [c] (read-chunk (chunk-path (:chunk/s3-key c)) c)) chunks))
        out (utf8-writer System/out)
        line (fn [& xs] (.write out ^String (str (str/join " " xs) "\n")))]
    (line "manifest-datom-count" (:stats/datom-count manifest))
    (line "manifest-chunk-count" (:stats/chunk-count manifest))
    (line "manifest-max-eid" (:stats/max-eid manifest))
    (line "manifest-max-tx" (:stats/max-tx manifest))
    (line "manifest-size-bytes" (:stats/size-bytes manifest))
    (line "chunks" (count chunks))
    (line "count" (count datoms))
    (line "max-eid" (reduce max 0 (keep (fn [[e]] (when (< e tx0) e)) datoms)))
    (line "max-tx" (reduce max 0 (map #(nth % 3) datoms)))
    (line "bootstrap-datoms" (count (filter #(= tx0 (nth % 3)) datoms)))
    (doseq [d datoms]
      (let [[e a v tx added] d]
        (when-not (and (= 5 (count d)) (int? e) (keyword? a) (int? tx) (boolean? added))
          (throw (ex-info (str "not a datom: " (pr-str d)) {})))
        (line (datom-line d))))
    (.flush out))
  (catch Throwable t
    (binding [*out* *err*]
      (println "FAILED:" (.getMessage t) (pr-str (ex-data t))))
    (System/exit 1)))
